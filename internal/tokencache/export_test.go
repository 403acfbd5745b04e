package tokencache

// MemoryDump is every value the in-process tier holds, as it holds them: what a dump of the process would show.
func (c *Cache) MemoryDump() [][]byte {
	var out [][]byte
	c.mem.all(func(v []byte) { out = append(out, v) })
	return out
}
