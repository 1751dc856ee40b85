cwlVersion: v1.2
$graph:
  - id: one
    class: CommandLineTool
    baseCommand: "true"
    inputs: []
    outputs: []
  - id: two
    class: CommandLineTool
    baseCommand: "false"
    inputs: []
    outputs: []
