//! The registry domain: crates, index lines, layers and the stack that overlays them.
//!
//! Nothing here knows about HTTP. The router translates requests into calls on
//! [`LayerStack`] and [`publish::prepare`], and [`RegistryError`] values back into
//! responses.

pub mod atomic;
pub mod disk_cache;
pub mod download_ahead;
pub mod error;
pub mod index;
pub mod index_cache;
pub mod layer;
pub mod local;
pub mod lockfile;
pub mod package;
pub mod prefetch;
pub mod publish;
pub mod remote;
pub mod stack;
pub mod tarball;
pub mod validate;

pub use error::RegistryError;
pub use layer::{Layer, WritableLayer};
pub use local::LocalLayer;
pub use package::CargoPackageLayer;
pub use remote::RemoteLayer;
pub use stack::LayerStack;
