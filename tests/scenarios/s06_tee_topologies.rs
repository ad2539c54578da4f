//! Scenario 6. Devices without an REE (transport inside the TEE) and devices with several TEEs (shared or per-TEE Broker).
