"""Bot SDK and offline verifier for the compliance back-office. No Django here."""
