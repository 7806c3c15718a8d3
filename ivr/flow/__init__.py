"""Call flow: runs a hotline's YAML menu against one caller's AGI session."""
