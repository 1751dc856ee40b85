cwlVersion: v1.2
class: Workflow
inputs:
  term: string
  text: File
outputs:
  found:
    type: File
    outputSource: grep/out_file
steps:
  grep:
    run: grepwrap-v1_0.cwl
    in:
      query_term: term
      text_file: text
    out: [out_file]
