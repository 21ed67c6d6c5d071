//! Native Kustomize: builds a kustomization from a read-only tree in process, with the
//! same output as `kustomize build`.
//!
//! Pure: files in, documents out. It must not touch the network or the file system
//! directly; everything is read through [`driftless_model::Tree`].
