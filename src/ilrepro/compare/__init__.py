"""Side-by-side speed comparison with other libraries (``ilrepro bench --against pcx``)."""
