import { Layout, Notice } from '../layout';

export function ErrorPage(p: { title: string; message: string }): JSX.Element {
  return (
    <Layout title={p.title} nav="none">
      <h1 safe>{p.title}</h1>
      <Notice kind="alert" text={p.message} />
      <p>
        <a href="/">Back to the overview</a>
      </p>
    </Layout>
  );
}
