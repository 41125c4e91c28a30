from modelops.cli.main import run

run()
