"""Turning detections into versioned, pseudonymised reports, and delivering them."""
