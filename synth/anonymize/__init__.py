"""Anonymization: each speaker of a recording given another voice, so the recording keeps its words and turns
but no longer its people.

- recording.py: the signal route (`voicemap anonymize`): a diarization, then a pseudo-voice per speaker
  applied by the transforms in voice_transforms.py (pitch, formants, McAdams), the OUT.json sidecar
- revoice.py: the TTS route (`--method tts`): the transcript (transcripts.py) spoken again by the Qwen3-TTS
  core in a pseudo-voice vector per speaker (pseudo_voices.py), fitted to each segment's time
"""
