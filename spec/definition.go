package spec

// ParseDefinition reads an app definition: a release spec as people write it,
// whose version may be left out (each request names its own; a version written
// here is replaced by the request's).
func ParseDefinition(data []byte, check ProviderCheck) (Release, error) {
	r, err := Parse(data, check)
	ps, ok := err.(Problems)
	if !ok {
		return r, err
	}
	var kept Problems
	for _, p := range ps {
		if p.Path == "version" && p.Message == "required" {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return r, nil
	}
	return r, kept
}
