//! The DNS stub client (placeholder until it moves here).
