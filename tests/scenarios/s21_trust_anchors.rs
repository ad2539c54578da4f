//! Scenario 21. Trust anchor management: adding and removing TAM anchors, TC-signer anchors, the TAM's TEE anchors; certificate expiry and revocation (ERR_CERTIFICATE_EXPIRED, ERR_BAD_CERTIFICATE).
