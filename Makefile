GO ?= go
BIN := bin/ircd

.PHONY: all build run test vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ircd

run: build
	./$(BIN) -config config.toml

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

clean:
	rm -rf bin data
