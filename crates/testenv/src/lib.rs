//! Test support: finds the peer tools and control-plane binaries built by `testenv/`,
//! starts one real etcd + kube-apiserver (+ kube-controller-manager) per test run, and
//! hands each test a fresh namespace.
//!
//! For tests and benchmarks only; never a dependency of the product.
