module cairn/word-count-go

go 1.24

require cairn/sdk v0.0.0

replace cairn/sdk => ../../guest-sdk/go
