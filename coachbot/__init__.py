"""coachbot: SMS coaching for recovery from neurotoxicity."""
