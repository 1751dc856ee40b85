cwlVersion: v1.2
class: CommandLineTool
inputs: [
outputs: []
