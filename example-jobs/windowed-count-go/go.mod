module cairn/windowed-count-go

go 1.24

require (
	cairn/sdk v0.0.0
	cairn/word-count-go v0.0.0
)

replace (
	cairn/sdk => ../../guest-sdk/go
	cairn/word-count-go => ../word-count-go
)
