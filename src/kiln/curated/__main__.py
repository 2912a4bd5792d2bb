from kiln.curated import write_index

write_index()
