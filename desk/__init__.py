"""The agent desktop: a web app served by the controller (accounts, screen pop, presence, wrap-up, frontline feedback)."""
