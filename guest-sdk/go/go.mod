module cairn/sdk

go 1.24
