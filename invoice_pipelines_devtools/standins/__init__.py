"""Local stand-ins for services our machines cannot reach, speaking their protocols on loopback (tests, demo)."""
