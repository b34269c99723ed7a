//! ld.so and ldconfig, modelled over a file-system view.
