"""Text and places: normalisation, the offline gazetteer, the occupation taxonomy and its O*NET import."""
