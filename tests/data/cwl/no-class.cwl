cwlVersion: v1.2
baseCommand: echo
inputs: []
outputs: []
