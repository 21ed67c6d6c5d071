//! SOPS: decrypts SOPS-encrypted YAML, JSON, dotenv and binary documents with age
//! identities, verifying the MAC.
//!
//! Pure: bytes and keys in, plaintext out. It must not log, print or keep a decrypted value.
