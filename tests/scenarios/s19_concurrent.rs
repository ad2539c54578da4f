//! Scenario 19. Several concurrent requests per device (token tracking, expiry, caps).
