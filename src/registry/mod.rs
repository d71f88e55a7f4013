//! The registry domain: crates, index lines, layers and the stack that overlays them.
//!
//! Nothing here knows about HTTP. The router translates requests into calls on
//! [`LayerStack`] and [`publish::prepare`], and [`RegistryError`] values back into
//! responses.

pub mod atomic;
pub mod error;
pub mod index;
pub mod layer;
pub mod local;
pub mod publish;
pub mod remote;
pub mod stack;

pub use error::RegistryError;
pub use layer::{Layer, WritableLayer};
pub use local::LocalLayer;
pub use local::package::CargoPackageLayer;
pub use remote::RemoteLayer;
pub use stack::LayerStack;
