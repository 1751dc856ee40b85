cwlVersion: v1.2
$graph:
  - id: helper
    class: CommandLineTool
    baseCommand: cat
    inputs: []
    outputs: []
  - id: main
    class: CommandLineTool
    baseCommand: echo
    arguments: [hello]
    requirements:
      EnvVarRequirement:
        envDef:
          GREETING: $(inputs.who)
    inputs:
      who:
        type: string
        inputBinding: {position: 1}
    outputs:
      out: stdout
