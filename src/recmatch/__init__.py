"""recmatch: Recommended Matches for recruiting CRMs."""
