//! Scenario 14. Personalization data as a separate, encrypted TC depending on its TA (including secrets kept from the TAM through the signer's own TAM).
