"""The ways in for people and apps: the `marketscan` command line (`worker.cli.main`,
`python -m worker.cli`) and the client it is built on (`worker.cli.client`, and
`worker.cli.async_client` for asyncio), which apps use too: one way in, one validation."""
