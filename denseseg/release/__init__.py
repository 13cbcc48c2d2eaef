"""The dataset release: what it holds (``contents``) and its datasheet (``templates/DATASHEET.md``)."""
