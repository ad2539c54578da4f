//! The RATS Verifier as an HTTP service.
