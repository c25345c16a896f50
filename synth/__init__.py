"""Voices as vectors, and back to sound: attribute directions, edits, anonymization, the TTS core."""
