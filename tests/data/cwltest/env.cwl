# EnvVarRequirement: a variable set from an input, read by the shell in the container.
cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: faice-test-busybox:latest
  EnvVarRequirement:
    envDef:
      GREETING: hello $(inputs.name)
baseCommand: [sh, -c, 'echo "$GREETING"']
inputs:
  name: string
outputs:
  greeting:
    type: stdout
stdout: greeting.txt
