# grepwrap of the RED beginners' guide as a CWL tool, in its image
cwlVersion: v1.0
class: CommandLineTool
baseCommand: grepwrap
doc: Search for query terms in text files.
requirements:
  DockerRequirement:
    dockerPull: docker.io/curiouscontainers/grepwrap
inputs:
  query_term:
    type: string
    inputBinding:
      position: 0
  text_file:
    type: File
    inputBinding:
      position: 1
  after_context:
    type: int?
    inputBinding:
      prefix: -A
outputs:
  out_file:
    type: File
    outputBinding:
      glob: out.txt
