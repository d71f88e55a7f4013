//! The registry domain: crates, index lines, layers and the stack that overlays them.
//!
//! Nothing here knows about HTTP. The router translates requests into calls on
//! [`LayerStack`] and [`publish::prepare`], and [`RegistryError`] values back into
//! responses.

pub(crate) mod atomic;
pub(crate) mod error;
pub(crate) mod index;
pub(crate) mod layer;
pub(crate) mod local;
pub(crate) mod publish;
pub(crate) mod remote;
pub(crate) mod rendered;
pub(crate) mod stack;

pub(crate) use error::RegistryError;
pub(crate) use layer::Layer;
pub(crate) use local::LocalLayer;
pub(crate) use local::package::CargoPackageLayer;
pub(crate) use remote::RemoteLayer;
pub(crate) use stack::LayerStack;
