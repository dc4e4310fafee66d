import WarrenCLI

await Warren.main()
