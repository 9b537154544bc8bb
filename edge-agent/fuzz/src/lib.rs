//! What the fuzz targets share: fixtures (an established BGP speaker, a
//! zone set, an overlay import policy) and independent readers of the
//! wire that the targets check the real decoders against.

pub mod bgp_wire;
pub mod fixtures;
pub mod frames;
