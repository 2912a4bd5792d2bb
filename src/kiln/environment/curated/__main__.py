from kiln.environment.curated import write_index

write_index()
