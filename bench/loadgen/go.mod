module gatewaycerts/bench/loadgen

go 1.22
