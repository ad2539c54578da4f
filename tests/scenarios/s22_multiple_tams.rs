//! Scenario 22. Several TAMs managing different TCs on one device (a TAM without permission for a component must not touch it).
