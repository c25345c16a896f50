"""From local speakers to global speakers, and from speakers to names. Takes vectors, never audio."""
