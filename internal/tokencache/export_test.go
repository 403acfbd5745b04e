package tokencache

// MemoryDump is every value the in-process tier holds, as it holds them: what a dump of the process would show.
func (c *Cache) MemoryDump() [][]byte {
	var out [][]byte
	for _, e := range c.mem.All() {
		out = append(out, e.data)
	}
	return out
}
