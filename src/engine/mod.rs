//! The parallel blob engine: one streaming pass per blob computes its digest and diff ID.
