//! Scenario 2. The Agent returns a message at once (an unsolicited QueryResponse, under the three conditions of draft §11), so the first POST already carries it.
