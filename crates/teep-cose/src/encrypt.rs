//! COSE_Encrypt / COSE_Encrypt0 content decryption and encryption for SUIT payloads
//! (draft-ietf-suit-firmware-encryption) and, later, encrypted EATs and SUIT reports.
