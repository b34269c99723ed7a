//! Layer contents: reproducible tar building and streaming tar header reading.
