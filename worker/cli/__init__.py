"""The ways in for people: the `marketscan` command line (`worker.cli.main`,
`python -m worker.cli`), built on the client apps use too (`worker.client`, and
`worker.async_client` for asyncio): one way in, one validation."""
