"""Shape maths: contours, point-set registration, templates, sampling."""
